; Proper tail calls: these loops run a million iterations in constant C
; stack (each iteration allocates an environment frame, so they also churn
; the heap through many concurrent collections).
(define (count-down n) (if (= n 0) 'done (count-down (- n 1))))
(display (count-down 1000000)) (newline)

(define (sum-to n)
  (let loop ((i 0) (acc 0))
    (if (> i n) acc (loop (+ i 1) (+ acc i)))))
(display (sum-to 1000000)) (newline)

; Mutual recursion through top-level definitions.
(define (my-even? n) (if (= n 0) #t (my-odd? (- n 1))))
(define (my-odd? n) (if (= n 0) #f (my-even? (- n 1))))
(display (my-even? 1000001)) (newline)

; Tail position inside cond, and, or, when, case, begin, let, let*.
(define (loop-forms n)
  (cond ((= n 0) 'cond-ok)
        (else
         (and #t
              (or #f
                  (when #t
                    (case 1
                      ((1)
                       (begin
                         (let ((m (- n 1)))
                           (let* ((k m))
                             (loop-forms k))))))))))))
(display (loop-forms 1000000)) (newline)

; Tail calls through apply and cond's =>.
(define (via-apply n) (if (= n 0) 'apply-ok (apply via-apply (list (- n 1)))))
(display (via-apply 1000000)) (newline)
(define (via-arrow n) (cond ((= n 0) 'arrow-ok) ((- n 1) => via-arrow)))
(display (via-arrow 1000000)) (newline)

; do loops run in constant stack too.
(display (do ((i 0 (+ i 1)) (v '() (if (= 0 (modulo i 100000)) (cons i v) v))) ((= i 1000000) v)))
(newline)

; Non-tail recursion 10000 deep is fine; a runaway one is an error, not a crash.
(define (build n) (if (= n 0) '() (cons n (build (- n 1)))))
(display (length (build 10000))) (newline)
