from headbayes.cli import main

main()
