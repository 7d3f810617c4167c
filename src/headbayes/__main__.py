from headbayes.app.cli import main

main()
