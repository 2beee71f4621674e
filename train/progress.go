package train

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// ProgressPrinter returns a Progress callback that shows a run on w: on a terminal a progress
// bar per epoch and phase (batches, the epoch's mean loss so far, img/s, ETA), otherwise a plain line every interval
// and one at the end of each phase. progressbar never checks for a terminal itself, so the
// caller says whether w is one.
func ProgressPrinter(w io.Writer, terminal bool, interval time.Duration) func(Progress) {
	if terminal {
		var bar *progressbar.ProgressBar
		var key string
		return func(p Progress) {
			k := fmt.Sprintf("%s %d", p.Phase, p.Epoch)
			if bar == nil || k != key {
				key = k
				bar = progressbar.NewOptions(p.Batches,
					progressbar.OptionSetWriter(w),
					progressbar.OptionSetDescription(fmt.Sprintf("epoch %d/%d %s", p.Epoch, p.Epochs, p.Phase)),
					progressbar.OptionShowCount(),
					progressbar.OptionSetPredictTime(true),
					progressbar.OptionThrottle(200*time.Millisecond),
					progressbar.OptionFullWidth(),
				)
				if p.ResumedFromBatch > 0 {
					_ = bar.Set(p.ResumedFromBatch)
				}
			}
			if p.Phase == "train" {
				bar.Describe(fmt.Sprintf("epoch %d/%d train mean loss %.4f %.0f img/s", p.Epoch, p.Epochs, p.Loss, p.ImagesPerSec))
			}
			_ = bar.Set(p.Batch)
			if p.Final {
				_ = bar.Finish()
				fmt.Fprintln(w)
				bar = nil
			}
		}
	}
	var last time.Time
	return func(p Progress) {
		now := time.Now()
		if !p.Final && now.Sub(last) < interval {
			return
		}
		last = now
		end := ""
		if p.Final {
			end = fmt.Sprintf(", done in %s", p.Elapsed.Round(100*time.Millisecond))
		}
		switch p.Phase {
		case "train":
			fmt.Fprintf(w, "train: epoch %d/%d batch %d/%d step %d mean loss %.4f %.1f img/s%s\n",
				p.Epoch, p.Epochs, p.Batch, p.Batches, p.Step, p.Loss, p.ImagesPerSec, end)
		default:
			fmt.Fprintf(w, "train: epoch %d/%d eval batch %d/%d %.1f img/s%s\n",
				p.Epoch, p.Epochs, p.Batch, p.Batches, p.ImagesPerSec, end)
		}
	}
}
