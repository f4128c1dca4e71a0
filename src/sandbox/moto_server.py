"""
The sandbox's moto_server (`npm start`): moto 5 with the Identity Store's group memberships as AWS keeps them
(identity_store_memberships.py: GetGroupMembershipId, which the service uses and stock moto lacks; one
membership per user and group). Usage: python3 moto_server.py [moto_server arguments]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import identity_store_memberships  # noqa: E402,F401  (patches moto on import)
from moto.server import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:])
