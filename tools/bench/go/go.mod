module mgc/tools/bench/go

go 1.19
