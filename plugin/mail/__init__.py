"""Protocol layer of Integrated Email: IMAP, POP3 and SMTP clients behind a host policy.

Pure protocol code: nothing here imports Flask, SQLAlchemy or the rest of ``plugin``,
so it can be used (and tested) on its own. Import the submodules you need, e.g.
``from plugin.mail.imap import ImapSession``.
"""
