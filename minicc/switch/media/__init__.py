"""The media plane: RTP, RFC 4733 DTMF, G.711, and the relay that anchors calls in minicc.

Pure modules: ``g711`` (codec tables), ``rtp`` (packets, RTP/RTCP demux), ``dtmf``
(telephone-event), ``stream`` (one continuous outgoing stream), ``wav`` (G.711 WAV headers).
Edge modules: ``relay`` (the only media socket code) and ``recorder`` (two-channel WAV).
"""
