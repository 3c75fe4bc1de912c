from tuimail.launcher import main

raise SystemExit(main())
