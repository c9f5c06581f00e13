"""Reports: tables and plots of a model or a pipeline run, as Markdown, HTML or text."""
