"""Print the demo's showcase firm: the largest settlement earner of the last 180 days."""

from credit.store import open_store

con = open_store(read_only=True)
row = con.execute(
    "SELECT firm_id FROM payments WHERE kind = 'settlement' "
    "AND occurred_at >= (SELECT max(occurred_at) FROM payments) - INTERVAL 180 DAY "
    "GROUP BY firm_id ORDER BY sum(amount_usd) DESC LIMIT 1"
).fetchone()
print(row[0] if row else "")
