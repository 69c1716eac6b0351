from msearch.cli import main

main()
