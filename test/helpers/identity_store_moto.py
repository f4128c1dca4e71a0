"""
strict_moto.py with two changes to moto 5's Identity Store, for tests of who the directory says a user is:

1. UpdateGroup, which moto 5.2.1 does not implement: a group's DisplayName can be changed (or Description),
   so a test can rename a group under a running service, as an administrator can in AWS.
2. GetUserId finds a userName whatever its case. moto matches it exactly; whether AWS does is not documented.
   A directory that finds 'ALICE' for 'alice' is the one where what the caller typed and what the directory
   calls the user differ, which is what a test of recording the directory's spelling needs.

Usage: python3 identity_store_moto.py [moto_server arguments]
"""
import os
import runpy

from moto.identitystore.exceptions import ConflictException, ResourceNotFoundException, ValidationException
from moto.identitystore.models import IdentityStoreBackend
from moto.identitystore.responses import IdentityStoreResponse


def _update_group(self, identity_store_id, group_id, operations):
    store = self._IdentityStoreBackend__get_identity_store(identity_store_id)
    group = store.groups.get(group_id)
    if group is None:
        raise ResourceNotFoundException(message="GROUP not found.", resource_type="GROUP")
    for operation in operations or []:
        path = (operation.get("AttributePath") or "").lower()
        value = operation.get("AttributeValue")
        if path == "displayname":
            if any(g.DisplayName == value and g.GroupId != group_id for g in store.groups.values()):
                raise ConflictException(message="Duplicate GroupDisplayName", reason="UNIQUENESS_CONSTRAINT_VIOLATION")
            group = group._replace(DisplayName=value)
        elif path == "description":
            group = group._replace(Description=value)
        else:
            raise ValidationException(message=f"The attribute {operation.get('AttributePath')} cannot be updated")
    store.groups[group_id] = group


def _update_group_response(self):
    self.identitystore_backend.update_group(
        self._get_param("IdentityStoreId"), self._get_param("GroupId"), self._get_param("Operations")
    )
    return "{}"


IdentityStoreBackend.update_group = _update_group
IdentityStoreResponse.update_group = _update_group_response

_stock_get_user_id = IdentityStoreBackend.get_user_id


def _get_user_id_any_case(self, identity_store_id, alternate_identifier):
    unique = (alternate_identifier or {}).get("UniqueAttribute") or {}
    value = unique.get("AttributeValue")
    if (unique.get("AttributePath") or "").lower() == "username" and isinstance(value, str):
        store = self._IdentityStoreBackend__get_identity_store(identity_store_id)
        for user in store.users.values():
            if user.UserName.lower() == value.lower():
                return user.UserId, identity_store_id
    return _stock_get_user_id(self, identity_store_id, alternate_identifier)


IdentityStoreBackend.get_user_id = _get_user_id_any_case

runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "strict_moto.py"), run_name="__main__")
