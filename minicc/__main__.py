from minicc.cli import main

main()
