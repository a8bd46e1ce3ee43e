from clinic_env.cli import main

main()
