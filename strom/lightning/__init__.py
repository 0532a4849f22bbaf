"""Lightning backends: money in (invoices, settlements) and money out (refunds)."""
