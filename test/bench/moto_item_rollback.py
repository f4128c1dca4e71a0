"""
Runs moto_server with one change for the benchmark: a DynamoDB transaction keeps a copy of the items it
touches, not of every table it touches, so that it can be undone.

Stock moto deep-copies each whole table before every TransactWriteItems. That makes each transaction cost
time in proportion to the table's size (real DynamoDB does not), which on a table of thousands of grants
measures moto rather than jit-access. The outcome of every request is unchanged: the same conditions are
checked by moto's own code, and a cancelled transaction leaves the same items as before.
Usage: python3 moto_item_rollback.py [moto_server arguments]
"""
import copy
import sys

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.server import main


class _TablesUncopied:
    """Stands in for the `copy` module inside moto's DynamoDB models: tables pass through uncopied."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def __getattr__(self, name):
        return getattr(copy, name)


dynamodb_models.copy = _TablesUncopied()
stock_transact_write_items = DynamoDBBackend.transact_write_items


def _touched_items(backend, transact_items):
    touched = []
    for entry in transact_items:
        operation = next(iter(entry.values()), None) or {}
        table = backend.tables.get(operation.get("TableName"))
        key = operation.get("Item") if "Item" in operation else operation.get("Key")
        if table is None or not key or table.hash_key_attr not in key:
            continue
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr and table.range_key_attr in key else None
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


def transact_write_items(self, transact_items):
    touched = _touched_items(self, transact_items)
    try:
        return stock_transact_write_items(self, transact_items)
    except Exception:
        _restore(touched)
        raise


DynamoDBBackend.transact_write_items = transact_write_items

if __name__ == "__main__":
    main(sys.argv[1:])
