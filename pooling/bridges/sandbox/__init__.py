"""The sandbox bridge worker: simulates WhatsApp behind the WAHA and Cloud API dialects.

It must never import Django or touch the database: hundreds of copies run in
the capacity benchmark, and tests start it as a plain subprocess.
"""
