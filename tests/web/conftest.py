from room.conftest import node_clients

__all__ = ["node_clients"]
