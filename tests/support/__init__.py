"""Plain values, functions and classes the tests share where a fixture cannot reach them.

They are used at collection time (in ``parametrize`` lists and module constants) or inside helper
classes that start servers. Everything that needs a client or a server is a fixture in a
``conftest.py`` instead.
"""
