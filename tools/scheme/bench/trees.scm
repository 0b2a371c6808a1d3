; Allocation-heavy benchmark: the binary-trees workload.  A long-lived
; tree stays while many short-lived trees of growing depth are built,
; checked and dropped; every node is a 3-slot vector.
;   time mgscheme tools/scheme/bench/trees.scm [with MGC_TRACE=1 for cycles]
(define (make-tree depth)
  (if (= depth 0)
      (vector #f #f)
      (vector (make-tree (- depth 1)) (make-tree (- depth 1)))))
(define (check tree)
  (if (vector-ref tree 0)
      (+ 1 (check (vector-ref tree 0)) (check (vector-ref tree 1)))
      1))

(define max-depth 16)
(define start (current-time-ms))
(display "stretch tree of depth ") (display (+ max-depth 1))
(display " check: ") (display (check (make-tree (+ max-depth 1)))) (newline)
(define long-lived (make-tree max-depth))
(let loop ((depth 4))
  (when (<= depth max-depth)
    (let ((iterations (expt 2 (+ (- max-depth depth) 4))))
      (let inner ((i 0) (sum 0))
        (if (< i iterations)
            (inner (+ i 1) (+ sum (check (make-tree depth))))
            (begin
              (display iterations) (display " trees of depth ") (display depth)
              (display " check: ") (display sum) (newline)))))
    (loop (+ depth 2))))
(display "long lived tree of depth ") (display max-depth)
(display " check: ") (display (check long-lived)) (newline)
(display "elapsed ms: ") (display (- (current-time-ms) start)) (newline)
(display (gc-stats)) (newline)
