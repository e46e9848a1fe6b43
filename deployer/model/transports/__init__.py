"""One module per transport of the inventory, each declaring `TRANSPORT = Transport(...)`:
its host key, the settings of the roles it serves, its implementations and their capabilities.
The registry (model/transport.py) lists this folder; adding a module here adds the transport."""
