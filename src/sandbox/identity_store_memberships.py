"""
Identity Store group memberships as AWS keeps them, for moto 5 (stock moto is kinder than AWS here). Importing
this module patches moto in place; both the sandbox (src/sandbox/moto_server.py, run by `npm start`) and the
tests' strict moto (test/helpers/strict_moto.py) load it, so the service meets the same Identity Store in both.

1. CreateGroupMembership makes a second membership of the same user in the same group; AWS refuses it
   (ConflictException, Reason UNIQUENESS_CONSTRAINT_VIOLATION). A duplicate would hide a grant that makes one
   membership twice, and survive a removal of the first.
2. DeleteGroupMembership of an unknown membership id succeeds; AWS answers ResourceNotFoundException.
3. GetGroupMembershipId and IsMemberInGroups are not implemented. The service finds a membership with
   GetGroupMembershipId (a direct lookup by group and member); tests look with both, as AWS answers.
"""
import json

from moto.identitystore.exceptions import ConflictException, ResourceNotFoundException
from moto.identitystore.models import IdentityStoreBackend
from moto.identitystore.responses import IdentityStoreResponse

_stock_create_group_membership = IdentityStoreBackend.create_group_membership


def _memberships(backend, identity_store_id):
    return backend._IdentityStoreBackend__get_identity_store(identity_store_id).group_memberships


def _membership_of(memberships, group_id, user_id):
    """The user's membership of the group, or None: at most one, as AWS keeps them."""
    return next((m for m in memberships if m["GroupId"] == group_id and m["MemberId"].get("UserId") == user_id), None)


def _create_group_membership(self, identity_store_id, group_id, member_id):
    user_id = (member_id or {}).get("UserId")
    if _membership_of(_memberships(self, identity_store_id).values(), group_id, user_id) is not None:
        raise ConflictException(message="Member and Group relationship already exists", reason="UNIQUENESS_CONSTRAINT_VIOLATION")
    return _stock_create_group_membership(self, identity_store_id, group_id, member_id)


def _delete_group_membership(self, identity_store_id, membership_id):
    memberships = _memberships(self, identity_store_id)
    if membership_id not in memberships:
        raise ResourceNotFoundException(message="GroupMembership not found", resource_type="GROUP_MEMBERSHIP")
    del memberships[membership_id]


def _get_group_membership_id(self):
    identity_store_id = self._get_param("IdentityStoreId")
    group_id = self._get_param("GroupId")
    user_id = (self._get_param("MemberId") or {}).get("UserId")
    membership = _membership_of(_memberships(self.identitystore_backend, identity_store_id).values(), group_id, user_id)
    if membership is not None:
        return json.dumps({"MembershipId": membership["MembershipId"], "IdentityStoreId": identity_store_id})
    raise ResourceNotFoundException(message="GroupMembership not found", resource_type="GROUP_MEMBERSHIP")


def _is_member_in_groups(self):
    identity_store_id = self._get_param("IdentityStoreId")
    user_id = (self._get_param("MemberId") or {}).get("UserId")
    memberships = _memberships(self.identitystore_backend, identity_store_id).values()
    results = [
        {"GroupId": group_id, "MemberId": {"UserId": user_id},
         "MembershipExists": _membership_of(memberships, group_id, user_id) is not None}
        for group_id in self._get_param("GroupIds") or []
    ]
    return json.dumps({"Results": results})


IdentityStoreBackend.create_group_membership = _create_group_membership
IdentityStoreBackend.delete_group_membership = _delete_group_membership
IdentityStoreResponse.get_group_membership_id = _get_group_membership_id
IdentityStoreResponse.is_member_in_groups = _is_member_in_groups
