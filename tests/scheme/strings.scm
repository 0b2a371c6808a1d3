; Strings, characters and symbols.
(define s "Hello, World")
(display (list (string-length s) (string-ref s 7) (substring s 0 5) (substring s 7))) (newline)
(write (string-append "foo" "" "bar" (string #\! #\?))) (newline)
(write (list (string=? "abc" "abc") (string<? "abc" "abd") (string>? "b" "abc"))) (newline)
(write (list (string-upcase s) (string-downcase s) (string->list "abc") (list->string (list #\x #\y)))) (newline)
(define m (make-string 3 #\-))
(string-set! m 1 #\+)
(write m) (newline)
(write (list (string->symbol "sym") (symbol->string 'abc) (eq? 'abc (string->symbol "abc")))) (newline)
(write (list (char->integer #\A) (integer->char 97) (char-upcase #\a) (char-alphabetic? #\1) (char-numeric? #\1))) (newline)
(write (list (string-index "hello" #\l) (string-index "hello" #\z) (string-copy "copy"))) (newline)
(write "escapes: \"quoted\" back\\slash tab\there") (newline)
(display "escapes: \"quoted\" back\\slash tab\there") (newline)

; String churn: build, join and drop many strings across collections.
(define (number-list n) (let loop ((i 0) (acc '())) (if (= i n) (reverse acc) (loop (+ i 1) (cons (number->string i) acc)))))
(define (join strs sep)
  (if (null? strs) ""
      (let loop ((rest (cdr strs)) (acc (car strs)))
        (if (null? rest) acc (loop (cdr rest) (string-append acc sep (car rest)))))))
(define joined (join (number-list 2000) ","))
(display (string-length joined)) (newline)
(display (substring joined 0 20)) (newline)
(define (repeat-string str n) (if (= n 0) "" (string-append str (repeat-string str (- n 1)))))
(display (string-length (repeat-string "abcdefghij" 1000))) (newline)
; Symbols made at run time are interned: the same name is the same symbol.
(define syms (map (lambda (i) (string->symbol (string-append "g" i))) (number-list 3000)))
(display (eq? (list-ref syms 1234) (string->symbol "g1234"))) (newline)
