"""A change to an API key, tenant or tier drops every process's cached keys (tenants/key_cache.py).

A cache invalidation, not business logic: whichever path saves the row (a
service, admin, a shell), the cached copies must not outlive it.
"""

from django.db import transaction

from tenants import key_cache


def forget_cached_keys(sender, instance, created: bool = False, **kwargs) -> None:
    if created:
        return  # nothing cached can name a row that did not exist
    # Here now, so this transaction's own later reads see the change (other processes cannot
    # see it before the commit); everywhere once it is committed.
    key_cache.forget_here()
    transaction.on_commit(key_cache.forget_all)
