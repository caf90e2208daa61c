"""Learning analytics: a weekly, privacy-first picture of how a course community interacts.

`instance-cli analytics run` collects the public posts of a course's hashtags through the
Mastodon REST API (Mastodon.py), with each thread's replies, favourites and boosts, builds a
directed interaction graph (networkx) and weekly figures, and writes a dated folder of GraphML,
CSV, JSON, plots (matplotlib) and an HTML summary. Accounts appear under their handle only when
they belong to this instance and opted in; everyone else is a keyed pseudonym, and no handle or
display name of theirs is stored anywhere, caches included.

  privacy.py  opt-in and pseudonyms       collect.py  the API, resumable and incremental
  figures.py  the graph and weekly numbers  report.py  the dated output folder
"""
