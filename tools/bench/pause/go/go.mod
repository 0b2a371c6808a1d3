module mgc/tools/bench/pause/go

go 1.19
