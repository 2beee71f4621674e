package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrainAugment: a fixed-teacher run with DeiT's augmentations at train time records them in
// run.json, says how mixed rows are targeted, is the same run when repeated (the augmentations
// are drawn from seed, epoch and image), and refuses a resume with other augmentations, naming
// the setting; a store with stored views refuses them.
func TestTrainAugment(t *testing.T) {
	lab := labelStore(t, "train", 1)
	aug := []string{"--labels", lab, "--data", idx("train"), "--epochs", "2", "--seed", "3",
		"--randaugment", "rand-m9-mstd0.5-inc1", "--erase", "0.25", "--mixup", "0.8", "--cutmix", "1.0"}
	var metrics [2][]byte
	var out string
	for i := range metrics {
		out = filepath.Join(t.TempDir(), "run")
		code, _, stderr := runTrain(t, append(aug, "--out", out)...)
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		if !strings.Contains(stderr, "RandAugment rand-m9-n2-mstd0.5-inc1-p0.5, random erasing p 0.25, mixup α 0.8 / cutmix α 1") ||
			!strings.Contains(stderr, "stored-teacher approximation") {
			t.Errorf("log does not state the augmentations:\n%s", stderr)
		}
		b, err := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var r map[string]any
			json.Unmarshal([]byte(l), &r)
			delete(r, "img_s")
			delete(r, "train_img_s")
			delete(r, "epoch_s")
			c, _ := json.Marshal(r)
			lines = append(lines, string(c))
		}
		metrics[i] = []byte(strings.Join(lines, "\n"))
	}
	if string(metrics[0]) != string(metrics[1]) {
		t.Errorf("two identical augmented runs differ:\n%s\n%s", metrics[0], metrics[1])
	}
	var run struct {
		Settings map[string]any `json:"settings"`
	}
	b, _ := os.ReadFile(filepath.Join(out, "run.json"))
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	mix, _ := run.Settings["mix"].(map[string]any)
	if run.Settings["randaugment"] != "rand-m9-n2-mstd0.5-inc1-p0.5" || run.Settings["erase_prob"] != 0.25 ||
		mix["mixup_alpha"] != 0.8 || mix["cutmix_alpha"] != 1.0 || mix["prob"] != 1.0 || mix["switch_prob"] != 0.5 {
		t.Errorf("run.json settings %v", run.Settings)
	}
	code, _, stderr := runTrain(t, append(aug, "--out", out, "--resume", "--erase", "0.3")...)
	if code != exitFatal || !strings.Contains(stderr, "settings.erase_prob") {
		t.Errorf("resume with another --erase: exit %d\n%s", code, stderr)
	}
	code, _, stderr = runTrain(t, append(aug, "--out", out, "--resume", "--randaugment", "rand-m9-mstd0.5")...)
	if code != exitFatal || !strings.Contains(stderr, "settings.randaugment") {
		t.Errorf("resume with another --randaugment: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := runTrain(t, append(aug, "--out", out, "--resume")...); code != exitOK {
		t.Errorf("resume of the finished run: exit %d\n%s", code, stderr)
	}
	multi := labelStore(t, "train", 3)
	code, _, stderr = runTrain(t, "--labels", multi, "--data", idx("train"), "--out", filepath.Join(t.TempDir(), "m"), "--mixup", "0.8")
	if code == exitOK || !strings.Contains(stderr, "single-view store only") {
		t.Errorf("mixing with stored views: exit %d\n%s", code, stderr)
	}
}

// TestTrainRepeatedAug: --repeated-aug reaches the run (its log line, run.json's settings) and
// a resume without it is refused naming settings.repeated_aug.
func TestTrainRepeatedAug(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"--labels", labelStore(t, "train", 1), "--data", idx("train"), "--epochs", "1", "--batch", "2", "--out", out}
	code, _, stderr := runTrain(t, append(args, "--repeated-aug", "3")...)
	if code != exitOK || !strings.Contains(stderr, "repeated augmentation 3") {
		t.Fatalf("exit %d, want a log line of the repeated augmentation:\n%s", code, stderr)
	}
	var run struct {
		Settings map[string]any `json:"settings"`
	}
	b, _ := os.ReadFile(filepath.Join(out, "run.json"))
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	if run.Settings["repeated_aug"] != 3.0 || run.Settings["views_per_image"] != 3.0 {
		t.Errorf("run.json settings %v", run.Settings)
	}
	if code, _, stderr = runTrain(t, append(args, "--resume")...); code != exitFatal || !strings.Contains(stderr, "settings.repeated_aug") {
		t.Errorf("resume without --repeated-aug: exit %d\n%s", code, stderr)
	}
}
