"""medzoo's benchmark harness: datasets, metrics, suites, results store, leaderboards and the CLI."""
