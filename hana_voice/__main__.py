from hana_voice.cli import main

main()
