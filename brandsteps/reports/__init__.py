"""What people read: cycle summaries and artifact tables, explain texts, status, the visual report, the audit trail."""
