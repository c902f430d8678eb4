"""The smart autoscaler: HPA-style scaling decisions with a trend-based look-ahead."""
