from .complete import main

main()
