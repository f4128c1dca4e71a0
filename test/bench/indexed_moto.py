"""
The benchmark's moto for exports at size, never the tests': the tests' strict moto (test/helpers/strict_moto.py),
plus a Query on a secondary index that finds its page in the index's order instead of reading the whole table.

Stock moto answers every page of a Query on an index by reading every item of the table, keeping those of the
partition, sorting them and walking to the page's start key: a page costs time in proportion to the table
(several seconds at 100,000 audit events), so an export of 100,000 events would measure moto's scans, not the
service. DynamoDB reads a page from the index's order. Here the first Query of an index partition keeps the
sorted partition (moto's own sort), later pages find their start key by bisection in it, and moto's own code then
answers from the page's items alone (projection, limits, last evaluated key). Any DynamoDB request other than a
read drops what is kept, so a page never comes from a stale copy. The raw Query (the bench's baseline) and the
service's export go through the same code. Usage: python3 indexed_moto.py [moto_server arguments]
"""
import inspect
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "helpers"))

import strict_moto  # noqa: E402,F401  (its DynamoDB and Organizations changes; its main runs only as a script)
from moto.dynamodb.models.table import Table  # noqa: E402
from moto.dynamodb.responses import DynamoHandler  # noqa: E402
from moto.server import main  # noqa: E402

_READS = {"Query", "Scan", "GetItem", "BatchGetItem", "DescribeTable", "ListTables", "DescribeTimeToLive", "ListTagsOfResource"}
_writes = [0]
# strict_moto's: every DynamoDB request serialized.
_serialized_call_action = DynamoHandler.call_action


def _counting_call_action(self):
    write = self.headers.get("X-Amz-Target", "").split(".")[-1] not in _READS
    if write:
        _writes[0] += 1
    try:
        return _serialized_call_action(self)
    finally:
        # Counted again once done: a Query that ran while this write waited for the lock keeps nothing valid.
        if write:
            _writes[0] += 1


DynamoHandler.call_action = _counting_call_action

_stock_query = Table.query
_query_signature = inspect.signature(_stock_query)
_kept = {}


def _indexed_query(self, *args, **kwargs):
    call = _query_signature.bind(self, *args, **kwargs)
    call.apply_defaults()
    a = call.arguments
    simple = a["index_name"] and a["limit"] and not a["range_comparison"] and not a["range_key_conditions"] and not a["filter_kwargs"]
    if not simple:
        return _stock_query(*call.args, **call.kwargs)
    partition = tuple((name, value.type, str(value.value)) for name, value in a["hash_key_conditions"] or [])
    key = (id(self), a["index_name"], partition, bool(a["scan_index_forward"]))
    kept = _kept.get(key)
    if kept is None or kept["writes"] != _writes[0]:
        # moto's own answer, keeping the partition as moto sorts it.
        writes = _writes[0]
        seen = {}

        def keep_sorted(hash_attrs, range_attrs, items):
            ordered = Table.sorted_items(self, hash_attrs, range_attrs, items)
            seen.update(hash_attrs=hash_attrs, range_attrs=range_attrs, items=list(ordered if a["scan_index_forward"] is not False else reversed(ordered)))
            return ordered

        self.sorted_items = keep_sorted
        try:
            answer = _stock_query(*call.args, **call.kwargs)
        finally:
            del self.sorted_items
        if seen:
            _kept[key] = {"writes": writes, **seen}
        return answer
    items = kept["items"]
    start_key = a["exclusive_start_key"]
    low, high = 0, len(items)
    if start_key:
        # The items before the start key, in the page order, are a prefix: moto's own test finds its end.
        while low < high:
            middle = (low + high) // 2
            if self._item_comes_before_dct(items[middle], start_key, kept["hash_attrs"], kept["range_attrs"], a["scan_index_forward"]):
                low = middle + 1
            else:
                high = middle
    page = items[low:low + a["limit"] + 1]
    call.arguments["exclusive_start_key"] = None
    self.all_items = lambda: list(page)
    try:
        return _stock_query(*call.args, **call.kwargs)
    finally:
        del self.all_items


Table.query = _indexed_query

if __name__ == "__main__":
    main(sys.argv[1:])
