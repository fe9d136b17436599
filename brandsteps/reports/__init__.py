"""What people read: status, explain texts, the visual report and its server, the audit trail."""
