"""One module of figure functions per metric family (as dashboard.data.families)."""
