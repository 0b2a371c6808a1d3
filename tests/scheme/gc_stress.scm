; Mutation under concurrent marking: a long-lived binary tree whose nodes
; (vectors) are rewired while garbage is allocated, so the collector marks
; while the program moves pointers around.  A missed write barrier shows up
; as an MGC_VERIFY report (exit status 3) or a wrong checksum.
(define (make-tree depth)
  (if (= depth 0) (vector 'leaf 1 '())
      (vector 'node (make-tree (- depth 1)) (make-tree (- depth 1)))))
(define (tree-sum t)
  (if (eq? (vector-ref t 0) 'leaf) (vector-ref t 1)
      (+ (tree-sum (vector-ref t 1)) (tree-sum (vector-ref t 2)))))
(define root (make-tree 14))
(display (tree-sum root)) (newline)

; Swap the children of random inner nodes (no node is lost or duplicated),
; and hang fresh garbage lists from the leaves.
(define (random-inner t depth)
  (if (or (= depth 0) (eq? (vector-ref (vector-ref t 1) 0) 'leaf)) t
      (random-inner (vector-ref t (+ 1 (random 2))) (- depth 1))))
(define (swap! t)
  (let ((l (vector-ref t 1)))
    (vector-set! t 1 (vector-ref t 2))
    (vector-set! t 2 l)))
(define (random-leaf t)
  (if (eq? (vector-ref t 0) 'leaf) t (random-leaf (vector-ref t (+ 1 (random 2))))))
(let loop ((i 0))
  (when (< i 100000)
    (swap! (random-inner root (random 14)))
    (let ((leaf (random-leaf root)))
      (vector-set! leaf 2 (cons (make-string 20 #\x) (if (pair? (vector-ref leaf 2)) (list (car (vector-ref leaf 2))) '()))))
    (loop (+ i 1))))
(display (tree-sum root)) (newline)
(define (count-strings t)
  (if (eq? (vector-ref t 0) 'leaf) (length (vector-ref t 2))
      (+ (count-strings (vector-ref t 1)) (count-strings (vector-ref t 2)))))
(display (> (count-strings root) 10000)) (newline)
(display (> (cdr (assq 'cycles (gc-stats))) 3)) (newline)
(display (cdr (assq 'verify-misses (gc-stats)))) (newline)
