# deitkd — the two README commands are `make demo` and `make test`; both run `make setup` first.
GO      ?= go
OUT     ?= out
FASHION_MNIST ?= /usr/share/datasets/fashion-mnist
DEMO_EPOCHS   ?= 3
DEMO_LIMIT    ?= 0
export GOFLAGS ?= -mod=mod

.PHONY: setup test demo build vet fmt bench bench-store bench-precompute bench-teacher bench-dataset \
	bench-train bench-train-e2e bench-feed fuzz testdata-images testdata-models reproduce reproduce-quick

setup:
	@bash scripts/setup.sh

build: setup
	$(GO) build ./...

test: setup
	$(GO) vet ./...
	$(GO) test -timeout 9m ./...

# The main job on the bundled default: label Fashion-MNIST with the bundled teacher, inspect the
# labels, train a short student run and export it (scripts/demo.sh says what each step does).
demo: setup
	@OUT=$(OUT)/demo FASHION_MNIST=$(FASHION_MNIST) DEMO_EPOCHS=$(DEMO_EPOCHS) DEMO_LIMIT=$(DEMO_LIMIT) bash scripts/demo.sh

# DeiT's findings at small scale: every experiment of docs/results.md (about 1.5 hours on 2 cores;
# an interrupted run continues where it stopped), then the report and its plots. The quick variant
# runs every cell on 2,000 images for 2 epochs in under 15 minutes, into out/reproduce-quick/results.md.
reproduce: setup
	$(GO) build -o bin/ ./cmd/...
	bin/reproduce --data $(FASHION_MNIST)

reproduce-quick: setup
	$(GO) build -o bin/ ./cmd/...
	bin/reproduce --quick --data $(FASHION_MNIST)

# Speed is measured here, never in tests. Each benchmark reports its own reference measured in
# the same run (bare ONNX Runtime, PyTorch, ...) and the ratio.
bench: bench-store bench-precompute bench-train

bench-store: setup
	$(GO) test -run '^$$' -bench . -benchtime 3x ./store/

bench-precompute: setup
	$(GO) test -run '^$$' -bench Precompute -benchtime 1x -timeout 30m ./precompute/

# Training speed (scripts/bench_train.sh): one step (forward, hard-distillation loss, backward,
# clipping, AdamW) of fm-tiny (B 128) and of DeiT-tiny's shape at 96 px (B 64), deitkd and
# PyTorch (Debian's, 2 threads) alternating, 3 rounds each: img/s, CPU-ms/img, peak RSS and the
# ratios; then the speed-of-light table against the machine's sgemm measured in the same run.
bench-train: setup
	@bash scripts/bench_train.sh

# Training end to end, data included: train's own train_img_s against the plain PyTorch loop
# (scripts/parity_torch.py) on 20,000 Fashion-MNIST images, alternating.
bench-train-e2e: setup
	@bash scripts/bench_train_e2e.sh

# Feeding capacity: deitkd's pipeline (precompute --teacher-off) against a PyTorch DataLoader
# (PIL + torchvision eval transform, workers = cores, batch 64) on the same 2,000 JPEGs,
# alternating; img/s, CPU ms per image and the ratio.
bench-feed: setup
	@bash scripts/bench_feed.sh

bench-teacher: setup
	$(GO) test -run '^$$' -bench Run -benchtime 50x ./teacher/

bench-dataset: setup
	$(GO) test -run '^$$' -bench . -benchtime 2s ./dataset/

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 60s -fuzzminimizetime 5s ./dataset/
	$(GO) test -run '^$$' -fuzz FuzzParseIDX -fuzztime 30s -fuzzminimizetime 5s ./dataset/
	$(GO) test -run '^$$' -fuzz FuzzOpenList -fuzztime 30s -fuzzminimizetime 5s ./dataset/
	$(GO) test -run '^$$' -fuzz FuzzEXIFOrientation -fuzztime 30s -fuzzminimizetime 5s ./dataset/
	$(GO) test -run '^$$' -fuzz FuzzReadClassMap -fuzztime 30s -fuzzminimizetime 5s ./precompute/
	$(GO) test -run '^$$' -fuzz FuzzParseManifest -fuzztime 30s -fuzzminimizetime 5s ./store/
	$(GO) test -run '^$$' -fuzz FuzzFloat16 -fuzztime 30s -fuzzminimizetime 5s ./internal/half/
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s -fuzzminimizetime 5s ./schema/
	$(GO) test -run '^$$' -fuzz FuzzPreprocessFromMetadata -fuzztime 30s -fuzzminimizetime 5s ./teacher/
	$(GO) test -run '^$$' -fuzz FuzzReadSafetensors -fuzztime 30s -fuzzminimizetime 1x ./export/
	$(GO) test -run '^$$' -fuzz FuzzTruncateMetrics -fuzztime 30s -fuzzminimizetime 5s ./train/
	$(GO) test -run '^$$' -fuzz FuzzRunFile -fuzztime 30s -fuzzminimizetime 5s ./train/
	$(GO) test -run '^$$' -fuzz FuzzCheckpoint -fuzztime 30s -fuzzminimizetime 1x ./student/

# Regenerate committed test data (needs Debian's python3-torch, python3-torchvision, python3-onnx).
testdata-images:
	/usr/bin/python3 scripts/make_testimages.py && /usr/bin/python3 scripts/torchvision_reference.py

testdata-models:
	/usr/bin/python3 scripts/make_test_models.py

fmt:
	gofmt -l -w .
