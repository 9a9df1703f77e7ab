from pooling.bridges.sandbox.server import main

main()
