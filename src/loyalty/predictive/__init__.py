"""Predicted customer lifetime value: BG/NBD (repeat purchases) and Gamma-Gamma (spend) fitted by maximum
likelihood, per-customer scores, and the holdout evaluation. ``clv`` is the entry point the dbt Python models call;
``bgnbd`` and ``gamma_gamma`` hold each model's formulas; ``estimation`` the shared optimiser and convergence rule;
``grouping`` the collapsing of customers who share a history; ``raw_history`` a test/benchmark mirror of the
warehouse's input model."""
