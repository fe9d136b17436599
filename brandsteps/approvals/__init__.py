"""Approvals: who may approve (TOTP, four eyes) and the answer a reviewer gives."""
