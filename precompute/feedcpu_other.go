//go:build !unix

package precompute

import "time"

// processCPU is unknown here: FeedSummary.CPU stays 0.
func processCPU() time.Duration { return 0 }
