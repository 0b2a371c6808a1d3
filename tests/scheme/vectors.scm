; Vectors: construction, mutation, conversion, growth.
(define v (make-vector 5 0))
(vector-set! v 0 'a)
(vector-set! v 4 "e")
(write v) (newline)
(display (list (vector-length v) (vector-ref v 0) (vector? v) (vector? '(1)))) (newline)
(display (vector 1 2 3)) (display (vector->list #(x y z))) (display (list->vector '(1 (2) "3"))) (newline)
(define w (vector-grow #(1 2 3) 6))
(display w) (newline)
(vector-fill! v 7)
(display v) (newline)

; In-place insertion sort on a vector of 2000 elements.
(define (vector-sort! vec)
  (let outer ((i 1))
    (when (< i (vector-length vec))
      (let ((x (vector-ref vec i)))
        (let inner ((j (- i 1)))
          (if (and (>= j 0) (> (vector-ref vec j) x))
              (begin (vector-set! vec (+ j 1) (vector-ref vec j)) (inner (- j 1)))
              (vector-set! vec (+ j 1) x))))
      (outer (+ i 1)))))
(define big (make-vector 2000 0))
(do ((i 0 (+ i 1))) ((= i 2000)) (vector-set! big i (modulo (* i 7919) 2003)))
(vector-sort! big)
(display (list (vector-ref big 0) (vector-ref big 1) (vector-ref big 1999))) (newline)

; A vector of vectors, each slot rewritten many times while garbage is
; made: every store goes through the write barrier.
(define grid (make-vector 100 #f))
(do ((i 0 (+ i 1))) ((= i 100)) (vector-set! grid i (make-vector 100 '())))
(do ((round 0 (+ round 1))) ((= round 30))
  (do ((i 0 (+ i 1))) ((= i 100))
    (let ((row (vector-ref grid i)))
      (do ((j 0 (+ j 1))) ((= j 100))
        (vector-set! row j (cons round (if (pair? (vector-ref row j)) (car (vector-ref row j)) '())))))))
(display (vector-ref (vector-ref grid 42) 17)) (newline)

; Calls with more arguments than fit the evaluator's stack buffer.
(display (vector 1 2 3 4 5 6 7 8 9 10 11 12)) (newline)
(display (apply + (vector->list (make-vector 1000 1)))) (newline)
(display (vector-ref #(1 2 3) 1)) (newline)
