"""Campaign results (treated vs control) and loyalty programme KPI reports."""
