"""Views of the activities app, one module per page: list + export, editing, calendar."""
