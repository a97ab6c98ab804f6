"""Points: versioned rules, the append-only ledger of riders' points (awards from clues, patrol tasks,
alerts, sightings and training; administrators' adjustments), leaderboards, the reward catalogue with
redemptions, and cash rewards for valuable clues with two-person approval."""
