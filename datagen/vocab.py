"""Static vocabularies: names, places, categories, user agents and the defect value pools.

Everything here is fictional or uses reserved example domains; no real email provider appears.
Order matters (indices into these tuples are drawn by the generator), so only append.
"""

from __future__ import annotations

# fmt: off
FIRST_NAMES: tuple[str, ...] = (
    "anna", "ben", "carla", "david", "eva", "felix", "greta", "hugo", "ines", "jonas", "karen", "liam",
    "maria", "noah", "olivia", "paul", "quinn", "rosa", "sam", "tina", "uma", "victor", "wendy", "xavier",
    "yara", "zoe", "adam", "bella", "chris", "diana", "emil", "fiona", "george", "hanna", "ivan", "julia",
    "kevin", "lena", "marco", "nina", "oscar", "petra", "rafael", "sofia", "tom", "ulla", "vera", "will",
    "amir", "bianca", "carlos", "dana", "elias", "freya", "gabriel", "helen", "isaac", "jana", "kai",
    "laura", "mateo", "nora", "omar", "pia", "ruben", "sara", "theo", "valentina", "yusuf", "zara",
    "alex", "beatrice", "caleb", "daria", "ethan", "flora", "gustav", "hazel", "ivy", "jack", "kira",
    "leo", "mila", "nils", "oliver", "penny", "ruth", "simon", "tara", "ugo", "vivian", "walter",
)

LAST_NAMES: tuple[str, ...] = (
    "smith", "mueller", "garcia", "johnson", "schmidt", "martin", "brown", "fischer", "lopez", "wilson",
    "weber", "dubois", "taylor", "meyer", "rossi", "anderson", "wagner", "moreau", "thomas", "becker",
    "ferrari", "jackson", "schulz", "laurent", "white", "hoffmann", "romano", "harris", "koch", "lefebvre",
    "clark", "richter", "colombo", "lewis", "klein", "fontaine", "walker", "wolf", "ricci", "hall",
    "neumann", "girard", "young", "schwarz", "marino", "king", "zimmermann", "bonnet", "wright", "braun",
    "greco", "scott", "krueger", "mercier", "green", "hofmann", "bruno", "baker", "hartmann", "blanc",
    "adams", "lange", "gallo", "nelson", "werner", "garnier", "hill", "krause", "conti", "campbell",
    "lehmann", "chevalier", "mitchell", "schmitt", "costa", "roberts", "koehler", "francois", "carter",
    "maier", "mancini", "phillips", "herrmann", "lambert", "evans", "koenig", "lombardi", "turner",
)

# Reserved example domains only (RFC 2606 style), so generated data can never email anyone.
EMAIL_DOMAINS: tuple[str, ...] = (
    "example.com", "example.org", "example.net", "mail.example.com", "mail.example.net",
    "inbox.example.org", "post.example.com", "webmail.example.net", "me.example.org", "home.example.com",
)
# Test orders are recognisable by this domain alone (see datagen/README.md).
TEST_EMAIL_DOMAIN = "test.invalid"

# (iso2, weight, currency, tax rate on net goods, non-ISO spellings used by the country defect)
COUNTRIES: tuple[tuple[str, float, str, float, tuple[str, ...]], ...] = (
    ("US", 0.58, "USD", 0.07, ("USA", "United States", "u.s.a.", "United States of America", "us")),
    ("CA", 0.07, "CAD", 0.13, ("Canada", "CAN", "ca")),
    ("GB", 0.10, "GBP", 0.0, ("UK", "United Kingdom", "Great Britain", "gb")),
    ("DE", 0.10, "EUR", 0.0, ("Germany", "Deutschland", "DEU", "de")),
    ("FR", 0.06, "EUR", 0.0, ("France", "FRA", "fr")),
    ("NL", 0.04, "EUR", 0.0, ("Netherlands", "Holland", "NLD", "nl")),
    ("ES", 0.03, "EUR", 0.0, ("Spain", "España", "ESP", "es")),
    ("IT", 0.02, "EUR", 0.0, ("Italy", "Italia", "ITA", "it")),
)

CITIES: dict[str, tuple[str, ...]] = {
    "US": ("Springfield", "Riverton", "Fairview", "Greenville", "Madison", "Franklin", "Clinton", "Salem"),
    "CA": ("Maplewood", "Lakeview", "Port Hope", "Riverside"),
    "GB": ("Ashford", "Kingsbury", "Milton", "Newport"),
    "DE": ("Neustadt", "Altdorf", "Bergheim", "Lindenau"),
    "FR": ("Villeneuve", "Montreuil", "Beaumont", "Saint-Martin"),
    "NL": ("Nieuwdorp", "Oosterhout", "Zuidwijk"),
    "ES": ("Villanueva", "San Pedro", "Santa Cruz"),
    "IT": ("Castelnuovo", "Monteverde", "Villafranca"),
}

# Currencies the shop sells in, with the fixed rate used to price orders (units of currency per USD).
# Written to _truth/fx_rates so the fx seed can be checked against it.
CURRENCIES: tuple[tuple[str, float], ...] = (("USD", 1.0), ("EUR", 0.92), ("GBP", 0.79), ("CAD", 1.36))

# (name, relative demand, median price USD, brands, product nouns, search queries)
CATEGORIES: tuple[tuple[str, float, float, tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    ("Apparel", 0.16, 38.0,
     ("Northwind", "Lumen", "Cobalt & Co"), ("T-Shirt", "Hoodie", "Jacket", "Jeans"),
     ("hoodie", "winter jacket", "black jeans")),
    ("Footwear", 0.09, 75.0,
     ("Stride", "Trailhead", "Urbanite"), ("Sneakers", "Boots", "Sandals", "Loafers"),
     ("running shoes", "leather boots")),
    ("Accessories", 0.08, 25.0,
     ("Lumen", "Oakhill", "Vela"), ("Belt", "Scarf", "Cap", "Wallet", "Socks"),
     ("wool scarf", "leather belt")),
    ("Beauty", 0.08, 22.0,
     ("Glowra", "Petal Lab", "Aurelia"), ("Lipstick", "Mascara", "Perfume", "Nail Kit"),
     ("perfume", "lipstick red")),
    ("Skincare", 0.07, 28.0,
     ("Petal Lab", "Dermique", "PureLeaf"), ("Serum", "Moisturizer", "Cleanser", "SPF"),
     ("vitamin c serum", "face cream")),
    ("Home & Kitchen", 0.10, 45.0,
     ("Hearth", "Casa Viva", "Ironleaf"), ("Pan", "Knife Set", "Mug Set", "Kettle"),
     ("cast iron pan", "coffee mug")),
    ("Bedding & Bath", 0.06, 55.0,
     ("Dreamwell", "Casa Viva", "Linenry"), ("Duvet", "Pillow", "Towel Set"),
     ("cotton towels", "duvet cover")),
    ("Electronics", 0.08, 120.0,
     ("Voltix", "Sonara", "Pixelon"), ("Headphones", "Speaker", "Smartwatch"),
     ("wireless headphones", "bluetooth speaker")),
    ("Phone Accessories", 0.06, 19.0,
     ("Voltix", "Gripster", "Chargely"), ("Case", "Charger", "Cable", "Stand"),
     ("usb c cable", "phone case")),
    ("Sports & Outdoors", 0.07, 48.0,
     ("Trailhead", "Peakline", "Fitora"), ("Yoga Mat", "Backpack", "Bottle"),
     ("yoga mat", "hiking backpack")),
    ("Toys & Games", 0.05, 30.0,
     ("Playfox", "Brickly", "Tiny Tales"), ("Puzzle", "Board Game", "Plush Toy"),
     ("board game", "puzzle 1000")),
    ("Books", 0.05, 16.0,
     ("Inkwell Press", "Pagecraft"), ("Novel", "Cookbook", "Travel Guide", "Notebook"),
     ("cookbook", "travel guide")),
    ("Pet Supplies", 0.05, 24.0,
     ("Pawsome", "Tailwag"), ("Dog Bed", "Cat Toy", "Leash", "Pet Food"),
     ("dog bed", "cat toy")),
)

# Category index -> complementary category indices: these drive the non-random co-purchase structure.
COMPLEMENTS: tuple[tuple[int, ...], ...] = (
    (1, 2),    # Apparel -> Footwear, Accessories
    (0, 2),    # Footwear -> Apparel, Accessories
    (0, 1),    # Accessories -> Apparel, Footwear
    (4,),      # Beauty -> Skincare
    (3,),      # Skincare -> Beauty
    (6,),      # Home & Kitchen -> Bedding & Bath
    (5,),      # Bedding & Bath -> Home & Kitchen
    (8,),      # Electronics -> Phone Accessories
    (7,),      # Phone Accessories -> Electronics
    (0, 1),    # Sports & Outdoors -> Apparel, Footwear
    (11,),     # Toys & Games -> Books
    (10,),     # Books -> Toys & Games
    (5,),      # Pet Supplies -> Home & Kitchen
)

ADJECTIVES: tuple[str, ...] = (
    "Classic", "Essential", "Premium", "Everyday", "Pro", "Lite", "Eco", "Signature",
)

SITE = "https://shop.example.com"
STATIC_PAGES: tuple[str, ...] = ("/", "/sale", "/new-arrivals", "/bestsellers", "/gift-guide", "/help")

BROWSER_USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile "
    "Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0 Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0 Mobile "
    "Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36 "
    "Edg/124.0",
)
BOT_USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (compatible; ExampleBot/2.1; +https://bot.example.org/info)",
    "python-requests/2.31.0",
    "Mozilla/5.0 (compatible; CrawlerX/1.0; +https://crawler.example.net)",
    "curl/8.5.0",
    "Scrapy/2.11 (+https://scrapy.example.org)",
    "HeadlessChrome/124.0 (X11; Linux x86_64)",
)

# Human opens come from the mail client of the person; Apple MPP and link scanners are machine opens.
MAIL_CLIENT_USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.9.0",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile "
    "Safari/537.36",
)
APPLE_MPP_USER_AGENT = "Mozilla/5.0 (Apple Mail Privacy Protection; AppleMailProxy/1.0)"
SCANNER_USER_AGENT = "Mozilla/5.0 (compatible; MailLinkScanner/3.2; security-scan)"

# fmt: on

# Values used by the defects (see defects.py / README.md for what each is a defect of).
UNPARSEABLE_TIMESTAMPS: tuple[str, ...] = (
    "31/02/2025 25:61",
    "not a date",
    "2025-13-45T99:00:00Z",
    "0000-00-00 00:00:00",
    "yesterday",
    "2025/02/30 10:00",
    "N/A",
    "12:30 PM",
)
UNKNOWN_CURRENCIES: tuple[str, ...] = ("XXX", "ZZZ", "BTC", "US$", "EURO", "DM")
NON_NUMERIC_AMOUNTS: tuple[str, ...] = ("N/A", "twelve", "--", "1.2.3", "TBD", "#VALUE!")
IMPOSSIBLE_BIRTH_DATES: tuple[str, ...] = (
    "1800-01-01",
    "1800-06-15",
    "2031-05-02",
    "2099-12-31",
    "2040-02-29",
)
