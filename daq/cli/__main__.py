from corrlab.daq.cli.main import main

main()
