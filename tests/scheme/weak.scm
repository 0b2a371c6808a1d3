; Weak hash tables on ephemerons: an entry lasts as long as its key is
; reachable from outside the table, and keeps its value alive meanwhile.
(define t (make-weak-hash-table))
(define (iota n) (let loop ((i (- n 1)) (acc '())) (if (< i 0) acc (loop (- i 1) (cons i acc)))))

; 100 keys that stay reachable (from live-keys) ...
(define live-keys (map (lambda (i) (list 'live i)) (iota 100)))
(for-each (lambda (k) (hash-table-set! t k (* 10 (cadr k)))) live-keys)
; ... and 1000 keys that become garbage as soon as they are stored, some
; with values that point back to their keys (ephemerons: that must not
; keep them alive).
(define (add-dead-keys n)
  (let loop ((i 0))
    (when (< i n)
      (let ((k (list 'dead i)))
        (hash-table-set! t k (if (even? i) (cons k 'back-pointer) i)))
      (loop (+ i 1)))))
(add-dead-keys 1000)
(display (list "before gc:" (hash-table-count t))) (newline)
(gc)
(display (list "after gc:" (hash-table-count t))) (newline)

; The live entries and their values are intact.
(display (apply + (map (lambda (k) (hash-table-ref t k)) live-keys))) (newline)
(display (hash-table-ref t (list 'live 3) 'not-found)) (newline)   ; a new key, not eq
(display (hash-table-contains? t (car live-keys))) (newline)

; Values reachable only through the table stay alive while their key does.
(define (add-fresh-values)
  (for-each (lambda (k) (hash-table-set! t k (make-vector 10 (cadr k)))) live-keys))
(add-fresh-values)
(gc)
(display (vector-ref (hash-table-ref t (list-ref live-keys 42)) 9)) (newline)

; delete!, and keys that are not heap objects (never collected).
(hash-table-delete! t (car live-keys))
(hash-table-set! t 7 'seven)
(hash-table-set! t #\c 'char)
(gc)
(display (list (hash-table-count t) (hash-table-ref t 7) (hash-table-ref t #\c))) (newline)

; Dropping the last outside reference empties the table of those keys.
(set! live-keys #f)
(gc)
(display (list "after dropping keys:" (hash-table-count t))) (newline)

; A weak table as a cache of derived data, under churn.
(define cache (make-weak-hash-table))
(define (square-string k)
  (or (hash-table-ref cache k #f)
      (let ((s (number->string (* (car k) (car k)))))
        (hash-table-set! cache k s)
        s)))
(define keep (map list (iota 50)))
(let loop ((round 0))
  (when (< round 20)
    (for-each square-string keep)
    (for-each (lambda (i) (square-string (list i))) (iota 200))   ; throwaway keys
    (loop (+ round 1))))
(gc)
(display (list "cache:" (hash-table-count cache) (square-string (list-ref keep 12)))) (newline)
