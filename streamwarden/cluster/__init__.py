"""Several nodes sharing one camera list on PostgreSQL: leases with fencing, placement,
handoff, the cluster-wide index. Nothing here is imported outside a `[cluster]` config, so a
single node never loads psycopg."""
