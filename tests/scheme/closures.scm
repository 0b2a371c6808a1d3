; Closures: captured variables, shared mutable state, higher-order code.
(define (make-counter)
  (let ((n 0))
    (lambda () (set! n (+ n 1)) n)))
(define c1 (make-counter))
(define c2 (make-counter))
(c1) (c1) (c2)
(display (list (c1) (c2))) (newline)

(define (make-adder k) (lambda (x) (+ x k)))
(display (map (make-adder 10) '(1 2 3))) (newline)

(define (compose . fs)
  (if (null? fs) (lambda (x) x)
      (lambda (x) ((car fs) ((apply compose (cdr fs)) x)))))
(display ((compose (make-adder 1) (lambda (x) (* x 2))) 5)) (newline)

; Each do iteration gets a fresh frame, so each closure keeps its own i.
(define thunks (do ((i 0 (+ i 1)) (acc '() (cons (lambda () i) acc))) ((= i 4) (reverse acc))))
(display (map (lambda (t) (t)) thunks)) (newline)

; A bank account with a message-passing interface.
(define (make-account balance)
  (define (withdraw amount)
    (if (> amount balance) (error "insufficient funds:" amount)
        (begin (set! balance (- balance amount)) balance)))
  (define (deposit amount) (set! balance (+ balance amount)) balance)
  (lambda (msg . args)
    (cond ((eq? msg 'withdraw) (apply withdraw args))
          ((eq? msg 'deposit) (apply deposit args))
          ((eq? msg 'balance) balance)
          (else (error "unknown request" msg)))))
(define acc (make-account 100))
(acc 'deposit 50)
(acc 'withdraw 30)
(display (acc 'balance)) (newline)

; Variadic lambdas.
(display ((lambda args args) 1 2 3)) (newline)
(display ((lambda (a . rest) (list a rest)) 1)) (newline)
(display (apply + 1 2 '(3 4 5))) (newline)

; Many closures alive at once, each with its own environment, across
; collections.
(define adders (let loop ((i 0) (acc '())) (if (= i 20000) acc (loop (+ i 1) (cons (make-adder i) acc)))))
(display (apply + (map (lambda (f) (f 1)) adders))) (newline)
(display (procedure? car)) (display (procedure? make-adder)) (display (procedure? 'car)) (newline)
(display make-counter) (newline)
