"""The floor below the domains: what RiderWatch needs that is no domain's own.

The clock, times as integers, field types the schemas share, bulk writes straight to the driver,
lists bound as one SQL parameter, and content-addressed file storage. Nothing here imports a domain,
the policy or the models.
"""
