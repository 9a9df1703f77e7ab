"""A change to an API key, tenant or tier drops every process's cached keys (tenants/key_cache.py).

A cache invalidation, not business logic: whichever path saves the row (a
service, admin, a shell), the cached copies must not outlive it.
"""

from tenants import key_cache


def forget_cached_keys(sender, instance, created: bool = False, **kwargs) -> None:
    if created:
        return  # nothing cached can name a row that did not exist
    key_cache.forget_on_commit()
