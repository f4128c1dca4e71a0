"""
Runs moto_server (moto 5) as strict as DynamoDB about transactions and conditional writes, so that tests of
concurrent jit-access instances test jit-access rather than moto. Two changes for DynamoDB:

1. One lock around every DynamoDB request (reads too, so that a strongly consistent read never sees half a
   transaction). moto_server answers each request on its own thread, so without it two writers can both
   pass the same condition, which DynamoDB never allows: it serializes the writes on an item.
2. A cancelled TransactWriteItems undoes only the items it touched. Stock moto deep-copies every table it
   touches beforehand and puts the copies back: that costs time in proportion to the table (the benchmark
   would measure moto), and without the lock it would also lose what other requests wrote meanwhile.

Conditions are still checked by moto's own code.

And two for Organizations, whose limits stock moto does not enforce: a service control policy holds at most
5,120 characters, counted without whitespace as AWS counts them, and a root or OU has at most 5 attached
(ConstraintViolationException, as AWS answers). And Identity Store group memberships as AWS keeps them
(src/sandbox/identity_store_memberships.py, shared with the sandbox: one membership per user and group, removals
of unknown memberships refused, GetGroupMembershipId answered). Usage: python3 strict_moto.py [moto_server arguments]
"""
import copy
import sys
import threading

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.server import main

# Every DynamoDB request, from its first read of the backend to its serialized answer, runs in call_action:
# the server's route is DynamoHandler.dispatch, which makes a handler and calls its call_action.
_dynamodb = threading.Lock()
_stock_call_action = DynamoHandler.call_action


def _serialized_call_action(self):
    with _dynamodb:
        return _stock_call_action(self)


DynamoHandler.call_action = _serialized_call_action


class _TablesUncopied:
    """Stands in for the `copy` module inside moto's DynamoDB models: tables pass through uncopied."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def __getattr__(self, name):
        return getattr(copy, name)


dynamodb_models.copy = _TablesUncopied()
_stock_transact_write_items = DynamoDBBackend.transact_write_items


def _touched_items(backend, transact_items):
    touched = []
    for entry in transact_items:
        operation = next(iter(entry.values()), None) or {}
        table = backend.tables.get(operation.get("TableName"))
        key = operation.get("Item") if "Item" in operation else operation.get("Key")
        # An operation without its whole key writes nothing: moto cancels the transaction for it.
        if table is None or not key or any(name not in key for name in filter(None, (table.hash_key_attr, table.range_key_attr))):
            continue
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        touched.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
    return touched


def _restore(touched):
    for table, hash_value, range_value, before in reversed(touched):
        if before is None:
            table.delete_item(hash_value, range_value)
        elif range_value is not None:
            table.items[hash_value][range_value] = before
        else:
            table.items[hash_value] = before


def _transact_write_items(self, transact_items):
    touched = _touched_items(self, transact_items)
    try:
        return _stock_transact_write_items(self, transact_items)
    except Exception:
        _restore(touched)
        raise


DynamoDBBackend.transact_write_items = _transact_write_items

from moto.organizations.exceptions import ConstraintViolationException
from moto.organizations.models import OrganizationsBackend

SCP_MAX_CHARS = 5120
SCPS_PER_TARGET = 5
_stock_create_policy = OrganizationsBackend.create_policy
_stock_update_policy = OrganizationsBackend.update_policy
_stock_attach_policy = OrganizationsBackend.attach_policy


def _check_scp_size(content, policy_type):
    if policy_type == "SERVICE_CONTROL_POLICY" and content is not None and len("".join(content.split())) > SCP_MAX_CHARS:
        raise ConstraintViolationException("POLICY_CONTENT_LIMIT_EXCEEDED: a service control policy may hold at most 5120 characters")


def _create_policy(self, **kwargs):
    _check_scp_size(kwargs.get("Content"), kwargs.get("Type"))
    return _stock_create_policy(self, **kwargs)


def _update_policy(self, **kwargs):
    _check_scp_size(kwargs.get("Content"), self.get_policy_by_id(kwargs["PolicyId"]).type)
    return _stock_update_policy(self, **kwargs)


def _attach_policy(self, **kwargs):
    policy = self.get_policy_by_id(kwargs["PolicyId"])
    target = next((ou for ou in self.ou if ou.id == kwargs["TargetId"]), None)
    attached = [p for p in getattr(target, "attached_policies", []) if p.type == policy.type and p is not policy]
    if policy.type == "SERVICE_CONTROL_POLICY" and len(attached) >= SCPS_PER_TARGET:
        raise ConstraintViolationException("POLICY_NUMBER_LIMIT_EXCEEDED: at most 5 service control policies per target")
    return _stock_attach_policy(self, **kwargs)


OrganizationsBackend.create_policy = _create_policy
OrganizationsBackend.update_policy = _update_policy
OrganizationsBackend.attach_policy = _attach_policy

# And Identity Store group memberships as AWS keeps them (one per user and group, removals of unknown ones
# refused, GetGroupMembershipId and IsMemberInGroups answered): the module the sandbox's moto loads too.
import os as _os

sys.path.insert(0, _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "..", "..", "src", "sandbox"))
import identity_store_memberships  # noqa: E402,F401  (patches moto on import)

if __name__ == "__main__":
    main(sys.argv[1:])
