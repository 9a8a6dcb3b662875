"""Regenerate ``captions.txt``: 2,500 COCO-style image captions composed from scene templates.

The corpus is data (committed); this script documents how it was made. Scenes pair subjects with actions that
fit them (people ride bikes, giraffes graze), add COCO's usual attributes, places and counting phrases, and vary
surface form the way COCO annotators do (capitalised or not, final period or not, "There is ...", "A close up
of ..."). Run: ``python benchmarks/data/make_captions.py`` (deterministic, seed 0).
"""

from __future__ import annotations

import random
from pathlib import Path

PEOPLE = [
    "man",
    "woman",
    "boy",
    "girl",
    "child",
    "person",
    "young man",
    "little girl",
    "skier",
    "surfer",
    "skateboarder",
    "tennis player",
    "baseball player",
    "chef",
    "guy",
    "lady",
    "kid",
    "older man",
    "couple",
]
PEOPLE_PL = ["men", "women", "people", "kids", "children", "boys", "girls", "players", "skiers", "friends"]
PERSON_ACTS = [
    "riding a bike",
    "riding a horse",
    "riding a skateboard",
    "riding a wave on a surfboard",
    "holding an umbrella",
    "holding a tennis racket",
    "holding a cell phone",
    "holding a baseball bat",
    "holding a slice of pizza",
    "throwing a frisbee",
    "flying a kite",
    "eating a sandwich",
    "eating a hot dog",
    "drinking a cup of coffee",
    "talking on a phone",
    "walking a dog",
    "swinging a bat",
    "cutting a cake",
    "reading a book",
    "using a laptop",
    "playing a video game",
    "carrying a surfboard",
    "pulling a suitcase",
    "looking at a cell phone",
    "brushing his teeth",
    "sitting on a bench",
    "standing on a skateboard",
    "skiing down a snowy hill",
    "wearing a red hat",
    "wearing a black jacket",
    "standing next to a motorcycle",
    "sitting at a table",
    "waiting for a bus",
    "crossing the street",
    "taking a picture",
    "feeding a giraffe",
    "petting a horse",
    "catching a ball",
    "hitting a tennis ball",
    "jumping over a ramp",
    "laying on a bed",
    "cooking in a kitchen",
]
ANIMALS = [
    "dog",
    "cat",
    "horse",
    "cow",
    "sheep",
    "elephant",
    "giraffe",
    "zebra",
    "bear",
    "bird",
    "puppy",
    "kitten",
    "brown dog",
    "black cat",
    "white horse",
    "baby elephant",
    "polar bear",
    "seagull",
    "pigeon",
]
ANIMALS_PL = ["dogs", "cats", "horses", "cows", "sheep", "elephants", "giraffes", "zebras", "birds", "ducks"]
ANIMAL_ACTS = [
    "grazing",
    "standing",
    "laying down",
    "sleeping",
    "eating grass",
    "drinking water",
    "walking",
    "running",
    "sitting",
    "resting",
    "eating leaves from a tree",
    "looking at the camera",
    "playing with a ball",
    "chewing on a bone",
    "swimming",
    "perched on a branch",
    "laying on a couch",
    "sitting on a window sill",
    "standing in the shade",
    "walking through the snow",
]
PLACES = [
    "on the beach",
    "in a field",
    "in the park",
    "on a city street",
    "in a kitchen",
    "next to a fence",
    "at the airport",
    "on a snowy slope",
    "in the water",
    "on the grass",
    "near a building",
    "in a living room",
    "on a dirt road",
    "in a parking lot",
    "at the zoo",
    "in the woods",
    "on a sidewalk",
    "in front of a house",
    "under a tree",
    "by the river",
    "on a tennis court",
    "in a bathroom",
    "at a train station",
    "on a wooden dock",
    "in an open field",
    "behind a fence",
    "near the ocean",
    "in a crowded market",
    "on a baseball field",
    "inside a restaurant",
    "at a table",
    "on a boat",
]
OBJECTS = [
    "a laptop",
    "a bowl of fruit",
    "a vase of flowers",
    "a cup of coffee",
    "a plate of food",
    "a teddy bear",
    "a clock",
    "a red fire hydrant",
    "a stop sign",
    "a bicycle",
    "a motorcycle",
    "a toilet",
    "a sink",
    "a refrigerator",
    "a television",
    "a couch",
    "a chair",
    "a bed",
    "a kite",
    "a suitcase",
    "a backpack",
    "an umbrella",
    "a banana",
    "an orange",
    "a glass of wine",
    "a bottle of water",
    "a remote control",
    "a keyboard",
    "a pair of scissors",
    "a tennis racket",
    "a skateboard",
    "a surfboard",
    "a truck",
    "a bus",
    "a train",
]
OBJ_ADJ = [
    "small",
    "large",
    "white",
    "red",
    "old",
    "wooden",
    "empty",
    "clean",
    "blue",
    "black",
    "green",
    "yellow",
    "metal",
    "tall",
    "little",
    "big",
    "dirty",
    "brown",
    "colorful",
    "broken",
    "modern",
    "plastic",
]
VEHICLES = [
    "bus",
    "train",
    "truck",
    "car",
    "motorcycle",
    "airplane",
    "boat",
    "fire truck",
    "double decker bus",
    "taxi",
    "van",
    "jet",
    "bike",
    "police car",
]
VEHICLE_ACTS = [
    "driving down a street",
    "parked on the side of the road",
    "traveling down the tracks",
    "parked in a lot",
    "flying over the city",
    "sitting on the runway",
    "docked in a harbor",
    "stopped at a traffic light",
    "going over a bridge",
    "pulling into a station",
    "parked next to a building",
    "driving through an intersection",
]
ROOMS = ["kitchen", "bathroom", "living room", "bedroom", "office", "dining room", "hotel room", "restaurant"]
ROOM_ITEMS = [
    "white cabinets",
    "a stainless steel refrigerator",
    "a wooden table",
    "a large window",
    "a blue couch",
    "a toilet and a sink",
    "hardwood floors",
    "a flat screen television",
    "a big mirror",
    "several chairs",
    "a ceiling fan",
    "a fireplace",
    "granite counter tops",
    "a potted plant",
    "a desk and a computer",
    "a queen sized bed",
    "tile floors",
    "a shower curtain",
    "green walls",
]
FOODS = [
    "pizza",
    "sandwich",
    "salad",
    "bowl of soup",
    "plate of pasta",
    "hot dog",
    "donut",
    "piece of cake",
    "plate of broccoli",
    "bowl of cereal",
    "burger",
    "slice of bread",
    "plate of eggs and bacon",
]
FOOD_SIDES = [
    "french fries",
    "a fork",
    "a knife",
    "a glass of milk",
    "some vegetables",
    "a cup of coffee",
    "a napkin",
    "sliced tomatoes",
    "rice",
    "a bottle of ketchup",
    "a spoon",
    "an apple",
]
COUNTS = ["Two", "Three", "Four", "Several", "A group of", "A couple of", "Many", "A herd of", "A few"]


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _person(rng: random.Random) -> str:
    adj = rng.choice(["young", "smiling", "tall", "happy"]) + " " if rng.random() < 0.1 else ""
    return "A " + adj + rng.choice(PEOPLE)


def _templates(rng: random.Random) -> list[str]:
    obj, place = rng.choice(OBJECTS), rng.choice(PLACES)
    adj = rng.choice(OBJ_ADJ)
    noun = obj.split(" ", 1)[1]
    thing = f"{adj} {noun}" if " " not in noun else noun  # "a red fire hydrant" gets no extra adjective
    return [
        f"{_person(rng)} {rng.choice(PERSON_ACTS)} {place}",
        f"{_person(rng)} is {rng.choice(PERSON_ACTS)} {place}",
        f"{rng.choice(COUNTS)} {rng.choice(PEOPLE_PL)} {rng.choice(PERSON_ACTS)} {place}",
        f"{_a(rng.choice(ANIMALS)).capitalize()} {rng.choice(ANIMAL_ACTS)} {place}",
        f"{rng.choice(COUNTS)} {rng.choice(ANIMALS_PL)} {rng.choice(ANIMAL_ACTS)} {place}",
        f"{_a(rng.choice(ANIMALS)).capitalize()} is {rng.choice(ANIMAL_ACTS)} next to {obj}",
        f"{_a(rng.choice(VEHICLES)).capitalize()} {rng.choice(VEHICLE_ACTS)}",
        f"{_a(adj + ' ' + rng.choice(VEHICLES)).capitalize()} {rng.choice(VEHICLE_ACTS)}",
        f"{_a(rng.choice(ROOMS)).capitalize()} with {rng.choice(ROOM_ITEMS)} and {rng.choice(ROOM_ITEMS)}",
        f"{_a(rng.choice(FOODS)).capitalize()} on a plate with {rng.choice(FOOD_SIDES)}",
        f"A close up of {_a(rng.choice(FOODS))} next to {rng.choice(FOOD_SIDES)}",
        f"There is {_a(thing)} {place}",
        f"{_a(thing).capitalize()} sitting on top of a table",
        f"{obj.capitalize()} and {rng.choice(OBJECTS)} {place}",
        f"{_person(rng)} {rng.choice(PERSON_ACTS)} while {rng.choice(PEOPLE_PL)} watch",
        f"{_a(rng.choice(ANIMALS)).capitalize()} and {_a(rng.choice(ANIMALS))} {rng.choice(ANIMAL_ACTS)} together",
        f"The {rng.choice(PEOPLE)}'s {rng.choice(['dog', 'cat', 'bike', 'car', 'bag'])} is {place}",
        f"{_person(rng)} with {_a(adj + ' ' + rng.choice(['hat', 'shirt', 'jacket', 'bag', 'dress']))} "
        f"{rng.choice(PERSON_ACTS)}",
    ]


def make(n: int = 2500, seed: int = 0) -> list[str]:
    """``n`` distinct captions with COCO-like surface variation."""
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < n:
        caption = rng.choice(_templates(rng))
        if rng.random() < 0.35:  # many COCO captions are lower-case and/or lack the final period
            caption = caption[0].lower() + caption[1:]
        if rng.random() < 0.75:
            caption += "."
        out[caption] = None
    return list(out)


if __name__ == "__main__":
    path = Path(__file__).with_name("captions.txt")
    path.write_text("\n".join(make()) + "\n", encoding="utf-8")
    print(f"wrote {path}")
